import{u as r,Q as u}from"./c-api-B_sunC62.js";function a(e,s){return r(e,u)}export{a as u};
